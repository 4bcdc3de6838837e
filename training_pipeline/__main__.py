from recsys.cli_support import main_guard
from training_pipeline.cli import app

main_guard(app)
