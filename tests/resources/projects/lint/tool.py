import os


def name() -> str:
    return "lint"
