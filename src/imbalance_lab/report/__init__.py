"""Runs -> DataFrame -> leaderboard, statistics and plots."""
