"""Errors docqa raises. Input errors are the user's to fix; the rest are failures of an index or a model."""


class DocqaError(Exception):
    """Base of every error docqa raises on purpose."""


class InputError(DocqaError):
    """The user gave something docqa cannot use: a bad question, file or argument."""


class QuestionError(InputError):
    """The question is empty, too long or otherwise unusable."""


class DocumentError(InputError):
    """A document cannot be read or holds no text."""


class IndexStateError(DocqaError):
    """An index is missing, corrupt, locked or built for another model."""


class IndexNotFoundError(IndexStateError):
    """No index at the given folder."""


class IndexCorruptError(IndexStateError):
    """An index file is missing, truncated or inconsistent."""


class IndexMismatchError(IndexStateError):
    """The index was built with another model or format than the one configured."""


class IndexLockedError(IndexStateError):
    """Another process is writing the index."""


class VectorStoreError(IndexStateError):
    """The vector store's server cannot be reached or refused a request."""


class ModelError(DocqaError):
    """A model cannot be found or loaded."""
