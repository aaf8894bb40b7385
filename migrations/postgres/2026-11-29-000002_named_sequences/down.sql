DROP TABLE pez.sequences;
