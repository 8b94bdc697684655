"""AI providers behind one interface (OpenAI, Anthropic, AWS Bedrock, and echo), pricing and budgets."""
