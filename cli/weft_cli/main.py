"""Entry point of the `weft` command."""


def main() -> None:
    print("weft")
