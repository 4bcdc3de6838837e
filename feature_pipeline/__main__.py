from feature_pipeline.cli import app
from recsys.cli_support import main_guard

main_guard(app)
