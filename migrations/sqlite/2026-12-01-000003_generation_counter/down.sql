DROP TABLE generation_counter;
