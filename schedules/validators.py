"""Text that reaches operators' terminals, logs and pages must be plain text.

Control characters (NUL included, which PostgreSQL refuses anyway), ANSI escape sequences and
Unicode bidi overrides would be stored as sent and replayed wherever the text is shown.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# C0 controls, DEL, C1 controls, and the bidi embedding/override/isolate characters.
_UNSAFE = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_LINE_BREAKS_AND_TABS = "\t\n\r"


@deconstructible
class PlainTextValidator:
    """Refuse control characters and bidi overrides; ``multiline`` text may keep tabs and line breaks."""

    def __init__(self, multiline: bool = False):
        self.multiline = multiline
        allowed = _LINE_BREAKS_AND_TABS if multiline else ""
        self._unsafe = re.compile(f"[{_UNSAFE}]" if not allowed else f"(?![{allowed}])[{_UNSAFE}]")

    def __call__(self, value):
        found = self._unsafe.search(str(value))
        if found:
            raise ValidationError(
                "Control characters, escape sequences and bidi overrides are not allowed "
                f"(found U+{ord(found.group()):04X}).",
                code="control_character",
            )

    def __eq__(self, other):
        return isinstance(other, PlainTextValidator) and other.multiline == self.multiline


plain_text = PlainTextValidator()
multiline_text = PlainTextValidator(multiline=True)
