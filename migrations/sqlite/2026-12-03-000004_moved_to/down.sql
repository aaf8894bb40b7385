DROP TABLE moved_to;
