"""AI Factory Academy: site config, spawners, accounts, learner helpers, curriculum runner, course pipeline and CLI."""
