"""The error a user can fix: a bad file, flag, setting or path, raised where input is checked.

Entry points print a `UserError` (and an `OSError`: a missing file, a full disk) as one line,
`<program>: error: <message>` (`cli.exit_on_user_error`); any other exception keeps its traceback,
as a bug should. It is a `ValueError`, so code that handles bad values handles it too.
"""


class UserError(ValueError):
  """Bad input, named with its file, line, field and value where it has them."""
