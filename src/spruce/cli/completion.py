"""`spruce completion bash|zsh|fish`: a completion script drawn from the parser itself, so it
always offers the commands and options this spruce has."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

SHELLS = ("bash", "zsh", "fish")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce completion`."""
    parser = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description='Print a completion script. bash: eval "$(spruce completion bash)" in '
        "~/.bashrc; zsh: the same in ~/.zshrc; fish: spruce completion fish > "
        "~/.config/fish/completions/spruce.fish",
    )
    parser.add_argument("shell", choices=SHELLS)
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Print the script for the chosen shell."""
    from spruce.cli import build_parser

    commands = _commands(build_parser())
    script = {"bash": _bash, "zsh": _zsh, "fish": _fish}[args.shell](commands)
    sys.stdout.write(script)
    return 0


# command -> [(option strings, choices)]
Commands = dict[str, list[tuple[list[str], list[str]]]]


def _commands(parser: argparse.ArgumentParser) -> Commands:
    found: Commands = {"": _options(parser)}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = _options(sub)
    return found


def _options(parser: argparse.ArgumentParser) -> list[tuple[list[str], list[str]]]:
    return [
        (list(action.option_strings), [str(c) for c in action.choices or ()])
        for action in parser._actions
        if action.option_strings
    ]


def _names(commands: Commands) -> str:
    return " ".join(name for name in commands if name)


def _flags(options: list[tuple[list[str], list[str]]]) -> str:
    return " ".join(flag for strings, _ in options for flag in strings)


def _subcommands(commands: Commands) -> Iterator[tuple[str, list[tuple[list[str], list[str]]]]]:
    return ((name, options) for name, options in commands.items() if name)


def _bash(commands: Commands) -> str:
    cases = []
    for name, options in _subcommands(commands):
        values = "".join(
            f"            {'|'.join(strings)}) COMPREPLY=($(compgen -W '{' '.join(choices)}' "
            f'-- "$cur")); return;;\n'
            for strings, choices in options
            if choices
        )
        positional = _positional_choices(name)
        cases.append(
            f"        {name})\n"
            f'            case "$prev" in\n{values}            esac\n'
            f'            if [[ "$cur" == -* ]]; then\n'
            f'                COMPREPLY=($(compgen -W "{_flags(options)}" -- "$cur"))\n'
            f"            else COMPREPLY=($(compgen -W '{positional}' -- \"$cur\") "
            f'$(compgen -f -- "$cur")); fi;;\n'
        )
    return (
        "# spruce completion for bash\n"
        "_spruce() {\n"
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd= i\n'
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        '        case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break;; esac\n'
        "    done\n"
        '    case "$cmd" in\n'
        f'        "") COMPREPLY=($(compgen -W "{_names(commands)} {_flags(commands[""])}" '
        '-- "$cur"));;\n'
        + "".join(cases)
        + "    esac\n}\ncomplete -o filenames -F _spruce spruce\n"
    )


def _positional_choices(name: str) -> str:
    return " ".join(SHELLS) if name == "completion" else ""


def _zsh(commands: Commands) -> str:
    cases = []
    for name, options in _subcommands(commands):
        values = "".join(
            f"                {'|'.join(strings)}) compadd -- {' '.join(choices)}; return;;\n"
            for strings, choices in options
            if choices
        )
        positional = _positional_choices(name)
        rest = f"compadd -- {positional}" if positional else "_files"
        cases.append(
            f"        {name})\n"
            f"            case ${{words[CURRENT-1]}} in\n{values}            esac\n"
            f"            if [[ $PREFIX == -* ]]; then compadd -- {_flags(options)}; "
            f"else {rest}; fi;;\n"
        )
    return (
        "#compdef spruce\n# spruce completion for zsh\n"
        "_spruce() {\n"
        "    local cmd= i\n"
        "    for ((i = 2; i < CURRENT; i++)); do\n"
        "        [[ ${words[i]} != -* ]] && { cmd=${words[i]}; break; }\n"
        "    done\n"
        "    case $cmd in\n"
        f"        '') compadd -- {_names(commands)} {_flags(commands[''])};;\n"
        + "".join(cases)
        + "    esac\n}\n"
        "compdef _spruce spruce\n"
    )


def _fish(commands: Commands) -> str:
    lines = ["# spruce completion for fish", "complete -c spruce -f"]
    lines.append(f'complete -c spruce -n "__fish_use_subcommand" -a "{_names(commands)}"')
    for name, options in commands.items():
        condition = "__fish_use_subcommand" if not name else f"__fish_seen_subcommand_from {name}"
        for strings, choices in options:
            parts = [f'complete -c spruce -n "{condition}"']
            for flag in strings:
                parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
            if choices:
                parts.append(f'-x -a "{" ".join(choices)}"')
            lines.append(" ".join(parts))
    lines.append(
        'complete -c spruce -n "__fish_seen_subcommand_from completion" -x -a "bash zsh fish"'
    )
    lines.append(
        'complete -c spruce -n "not __fish_use_subcommand; '
        'and not __fish_seen_subcommand_from completion" -F'
    )
    return "\n".join(lines) + "\n"
