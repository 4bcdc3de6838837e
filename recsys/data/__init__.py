"""Raw data sources: the synthetic generator, the H&M Kaggle loader and user-described data sets."""
