"""The evaluation harness: question sets and BEIR datasets through the same pipeline."""

from rag.evaluation.harness import evaluate_beir, evaluate_questions
from rag.evaluation.results import EvalReport, ModeReport, QuestionResult
from rag.questions import Question, load_questions

__all__ = [
    "EvalReport",
    "ModeReport",
    "Question",
    "QuestionResult",
    "evaluate_beir",
    "evaluate_questions",
    "load_questions",
]
