"""What commands read besides their options: account lists, JSON objects, rule sets.

Every problem is a :class:`~polysim_async_cli.CommandError` with exit code 2
that names the option or file, raised before anything is sent.
"""

from __future__ import annotations

import difflib
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from polysim_async_cli import EXIT_USAGE, CommandError

from .._errors import InvalidArgumentError
from .._shard import select_shard
from ..rules import RuleSet

if TYPE_CHECKING:
    from ._main import Context

__all__ = ["KNOWN_RULES", "account_ids", "json_object", "rules_object", "unknown_rules"]

# JSON numbers stay exact: whole numbers as int, the rest as Decimal (never float).
_object_decoder = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal)


def _read(name: str, path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise CommandError(
            f"{name}: cannot read {path}: {exc.strerror or exc}", EXIT_USAGE
        ) from None
    except UnicodeDecodeError as exc:
        where = "standard input" if path == "-" else path
        raise CommandError(
            f"{name}: {where} is not UTF-8 text (byte {exc.start}: {exc.reason})", EXIT_USAGE
        ) from None


def json_object(name: str, text: str | None) -> dict[str, Any] | None:
    """Decode the JSON object given to option ``name`` (``None`` when not given).

    Raises:
        CommandError: not a JSON object.
    """
    if text is None:
        return None
    try:
        return _object_decoder.decode(text.encode())
    except msgspec.DecodeError as exc:
        raise CommandError(f"{name}: not a JSON object: {exc}", EXIT_USAGE) from None


#: The rule parameters the rules engine judges (every other key is kept, not judged).
KNOWN_RULES = frozenset(f.name for f in msgspec.structs.fields(RuleSet)) - {"extra"}


def unknown_rules(rules: dict[str, Any]) -> list[str]:
    """One phrase per key of ``rules`` the rules engine does not know, with a likely fix.

    ``{"dialy_loss_pct": 5}`` gives ``["'dialy_loss_pct' (did you mean 'daily_loss_pct'?)"]``.
    """
    phrases = []
    for key in rules:
        if key in KNOWN_RULES:
            continue
        close = difflib.get_close_matches(key, sorted(KNOWN_RULES), n=1, cutoff=0.75)
        phrases.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return phrases


def rules_object(ctx: Context) -> dict[str, Any] | None:
    """The rule parameters of ``--rules JSON`` or ``--rules-file FILE``, checked.

    The object is returned as given (keys of your own are kept); its known rule
    parameters are checked with :meth:`RuleSet.from_wire` first, so a bad value
    fails here and not on the server. A ``null`` value is left out of the check
    (``accounts update`` reads it as "remove this key"). A key the rules engine
    does not know is named on stderr with the closest known name; with
    ``--strict-rules`` it is a usage error instead.

    Raises:
        CommandError: unreadable, not a JSON object, a bad rule parameter, or
            (``--strict-rules``) an unknown one.
    """
    args = ctx.args
    if args.rules_file is not None:
        name, text = "--rules-file", _read("--rules-file", args.rules_file)
    else:
        name, text = "--rules", args.rules
    rules = json_object(name, text)
    if rules is None:
        return None
    try:
        RuleSet.from_wire({k: v for k, v in rules.items() if v is not None})
    except InvalidArgumentError as exc:
        raise CommandError(f"{name}: {exc}", EXIT_USAGE) from None
    unknown = unknown_rules(rules)
    if unknown:
        text = f"{name}: unknown rule{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
        if args.strict_rules:
            raise CommandError(f"{text} (--strict-rules)", EXIT_USAGE)
        ctx.out.message(
            f"polysim {ctx.name}: warning: {text}: kept as given, not judged by the rules engine"
        )
    return rules


def account_ids(ctx: Context) -> list[str]:
    """The account ids of the positional arguments and ``--accounts-file``, in order, once each.

    With ``--shard I/N``, only the ids shard I owns (a stable hash of the id); when
    it owns none, a message says so (the command then has nothing to do).

    Raises:
        CommandError: no id at all, or an unreadable file.
    """
    args = ctx.args
    ids = list(args.account_ids)
    if args.accounts_file is not None:
        for line in _read("--accounts-file", args.accounts_file).splitlines():
            text = line.split("#", 1)[0].strip()
            if text:
                ids.append(text)
    if not ids:
        raise CommandError(
            f"polysim {ctx.name}: no account: give ACCOUNT_ID arguments or --accounts-file FILE",
            EXIT_USAGE,
        )
    unique = list(dict.fromkeys(ids))
    shard = getattr(args, "shard", None)
    owned = select_shard(unique, shard)
    if shard is not None and not owned:
        index, count = shard
        ctx.out.message(
            f"polysim {ctx.name}: shard {index}/{count} owns none of the {len(unique)} accounts"
        )
    return owned
