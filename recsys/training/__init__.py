"""Models (two-tower retrieval, CatBoost ranker), their metrics, baselines and reports."""
