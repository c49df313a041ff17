"""lead-intake: captures leads and engagements and announces them on Kafka."""
