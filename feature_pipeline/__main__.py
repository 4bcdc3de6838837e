from feature_pipeline.cli import main

main()
