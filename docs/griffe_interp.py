"""A griffe extension for interp's docstrings in the API reference.

interp's docstrings head their doctests ``Example:`` (Google's ``Examples:`` is what griffe reads as
code) and cross-reference with Sphinx roles (``:func:`name```); rendered as they are, the doctests
would be read as Markdown quotes and links. This rewrites both when the API reference is built;
the source is left alone.
"""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc|const):`~?([^`]+)`")


class InterpDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(r"`\1`", _EXAMPLE.sub(r"\1Examples:", obj.docstring.value))
