"""leadflow scoring: scores leads from fit and engagement, announces MQLs."""
