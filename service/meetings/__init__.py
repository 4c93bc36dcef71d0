"""组织生活 (organizational life): meetings, attendance, assigned tasks."""
