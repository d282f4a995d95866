from calc import add


def test_add() -> None:
    assert add(2, 3) == 5


def test_add_wrong() -> None:
    assert add(2, 2) == 5
