"""The two errors that the `fastlstm` command reports in a line, without a traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad file, flag, word): the CLI prints it as one line, without a traceback."""


class Diverged(Exception):
    """The loss, the gradient norm or the weights became NaN or inf; the message says where."""
