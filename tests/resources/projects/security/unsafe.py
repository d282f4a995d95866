def evaluate(expression: str) -> object:
    return eval(expression)
