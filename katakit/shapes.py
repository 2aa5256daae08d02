"""The `@kata` decorator: run-time shape checking with jaxtyping annotations, checked by typeguard
(and, under the kata tests, the promises of katakit.promises).

typeguard's own `@typechecked` and its import hook re-parse annotations and choke on jaxtyping's
dimension strings ("batch pos d_model"), so we give jaxtyping a small checker of our own that calls
`typeguard.check_type` on every annotated argument and on the return value. `jaxtyped` binds the
named dimensions across all of them, so a return of shape [n, 1] where [n] is due is reported with
the parameters, the expected annotation and the size each dimension name was bound to.
"""

import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import TypeVar

from jaxtyping import jaxtyped
from typeguard import check_type

from katakit import calls, promises

F = TypeVar("F", bound=Callable)


def _check_annotations(fn: F) -> F:
    """Wrap `fn` so each annotated argument, and the return value, is checked with typeguard."""
    signature = inspect.signature(fn)

    @functools.cache
    def hints() -> dict:
        return typing.get_type_hints(fn)

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        for name, value in signature.bind(*args, **kwargs).arguments.items():
            if name in hints():
                check_type(value, hints()[name])
        result = fn(*args, **kwargs)
        if "return" in hints():
            check_type(result, hints()["return"])
        return result

    return typing.cast(F, checked)


def kata(fn: F) -> F:
    """Mark `fn` as a kata: its shapes are checked on every call, and, under the kata tests, the
    promises of katakit.promises (inputs untouched, detached results).

    In `reference/` the body is the solution; in `katas/` the same function, generated from it,
    keeps the signature and docstring and its body is `raise NotImplementedError`.
    """
    checked = jaxtyped(typechecker=_check_annotations)(fn)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def advised(*args, **kwargs):
        try:
            return checked(*args, **kwargs)
        except TypeError as error:  # jaxtyping's TypeCheckError
            advice = _number_advice(str(error))
            if not advice:
                raise
            raise type(error)(f"{error}\n{advice}") from None

    @functools.wraps(fn)
    def kept_promises(*args, **kwargs):
        calls.note(fn)  # which katas a test calls: blame follows them (katakit.blame)
        return promises.call(fn, signature, args, kwargs, advised)

    return typing.cast(F, kept_promises)


# jaxtyping's report of a tensor returned where a Python number is due:
# "... the return value ... Actual value: bool[](torch) ... Expected type: bool."
_TENSOR_FOR_NUMBER = re.compile(
    r"the return value.*Actual value: \w+\[[^\]]*\]\(torch\).*Expected type: (bool|int|float)\.", re.S
)


def _number_advice(message: str) -> str:
    """For a tensor returned where the annotation says bool, int or float: `.item()`."""
    found = _TENSOR_FOR_NUMBER.search(message)
    if not found:
        return ""
    name = found.group(1)
    return f"A 0-d tensor is not a Python {name}: return `{name}(t.item())` (`.item()` turns it into a Python number)."
