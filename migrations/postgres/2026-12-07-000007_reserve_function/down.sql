DROP FUNCTION pez.reserve(bigint, bigint, text, bigint, text, text, bigint, boolean);
