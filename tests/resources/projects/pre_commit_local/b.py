BAD = 1
