"""nnterp's errors: one class per kind of failure, all subclasses of :class:`nnterp.Error`.

Every error raised by the C++ engine arrives as one of these, with the engine's message and these
attributes: ``subject`` (the file, tensor, point or option at fault), ``detail`` (what is wrong)
and ``hint`` (what to do). The classes also derive from the matching built-in exception, so
``except ValueError`` and ``except OSError`` keep working.
"""

from . import _nnterp


class Error(Exception):
    """Base class of every error nnterp raises."""

    subject = ""
    detail = ""
    hint = ""


class IoError(Error, OSError):
    """A file could not be opened, mapped or written."""


class FormatError(Error, ValueError):
    """A file's content is malformed (safetensors header, JSON, tokenizer.json)."""


class ConfigError(Error, ValueError):
    """config.json lacks a key or has a value of the wrong type."""


class UnsupportedError(Error, NotImplementedError):
    """A model type or option nnterp does not implement."""


class MissingWeightError(Error, KeyError):
    """A tensor the architecture needs is absent from the checkpoint."""

    def __str__(self):  # KeyError would quote the message
        return Exception.__str__(self)


class UnexpectedWeightError(Error, ValueError):
    """A checkpoint tensor no standardized module uses."""


class ShapeError(Error, ValueError):
    """A tensor of the wrong shape or dtype (a write to a point, a steering vector...)."""


class NotFoundError(Error, FileNotFoundError):
    """A model id or path that resolves to nothing."""


class InvalidArgumentError(Error, ValueError):
    """A bad value: a layer index out of range, an option, an input."""


class OutOfOrderError(InvalidArgumentError):
    """A trace asked for a point the forward pass has already passed (points go in forward order)."""


class TokenizerError(Error, ValueError):
    """The tokenizer could not encode or decode the input."""


class TemplateError(Error, ValueError):
    """A chat template failed to parse or render (its ``subject`` is "NAME:LINE:COLUMN"), or the
    model has no chat template."""


_BY_KIND = {
    "Io": IoError,
    "Format": FormatError,
    "Config": ConfigError,
    "Unsupported": UnsupportedError,
    "MissingWeight": MissingWeightError,
    "UnexpectedWeight": UnexpectedWeightError,
    "Shape": ShapeError,
    "NotFound": NotFoundError,
    "InvalidArgument": InvalidArgumentError,
    "OutOfOrder": OutOfOrderError,
    "Tokenizer": TokenizerError,
    "Template": TemplateError,
}
assert set(_BY_KIND) == set(_nnterp._error_kinds()), "a C++ ErrorKind has no Python class"
for _kind, _cls in _BY_KIND.items():
    _nnterp._register_error_class(_kind, _cls)

__all__ = ["Error"] + [cls.__name__ for cls in _BY_KIND.values()]
