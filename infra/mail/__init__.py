"""Mail: SMTP and console mailers, and the email notification channel."""
