from training_pipeline.cli import main

main()
