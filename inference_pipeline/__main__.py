from inference_pipeline.cli import main

main()
