"""docqa: extractive question answering over your documents, with cited answers."""

from qa.answer import Answer, Citation
from qa.assistant import Assistant, DocumentInfo, UpdateReport
from qa.config import Config
from qa.documents import Document
from qa.errors import DocqaError

__all__ = ["Answer", "Assistant", "Citation", "Config", "DocqaError", "Document", "DocumentInfo", "UpdateReport"]
