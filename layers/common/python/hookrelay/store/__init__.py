"""Data access behind small interfaces, so the logic is testable without AWS.

Each module declares a Protocol and its DynamoDB implementation.
"""
