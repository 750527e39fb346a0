"""course_lib: the helpers behind the course notebooks (see README.md and DESIGN notes)."""

from course_lib.profiles import active_profile, choose_settings
from course_lib.seeding import seed_everything

__all__ = ["active_profile", "choose_settings", "seed_everything", "__version__"]
__version__ = "0.1.0"
