"""The compile stage: intent to legs (construction paths), resolved and priced legs, payoff profiles."""
