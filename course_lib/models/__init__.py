"""Model definitions, one module per model family."""

from course_lib.models.lenet import LeNet5

__all__ = ["LeNet5"]
