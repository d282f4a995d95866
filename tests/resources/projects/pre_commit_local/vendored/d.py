BAD = 2
