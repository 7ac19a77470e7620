"""Domain errors. The CLI turns them into one line and exit code 2, the API into a 4xx."""


class RagError(Exception):
    """Base class: the message says what is wrong and how to fix it."""


class ConfigError(RagError):
    """Settings that cannot work (bad values, missing corpus folder)."""


class CorpusNotFound(ConfigError):
    """The corpus folder does not exist or holds no readable document."""


class IndexNotFound(RagError):
    """No index has been built at the configured place."""


class IndexMismatch(RagError):
    """The index on disk was built with other settings (model, format) than the current ones."""


class IndexCorrupt(RagError):
    """A file of the index is missing or unreadable."""


class InvalidQuery(RagError):
    """A question or query parameter that cannot be answered as given."""


class EmptyQuestion(InvalidQuery):
    """The question is blank."""


class DocumentNotFound(RagError):
    """No document with that id is in the corpus."""


class InvalidSpan(RagError):
    """A character range that does not fit the document."""


class SourceUnavailable(RagError):
    """A document's file cannot be read right now (permissions, I/O error)."""


class BackendUnavailable(RagError):
    """The index's store (a Milvus server or Milvus Lite folder) cannot be reached."""
