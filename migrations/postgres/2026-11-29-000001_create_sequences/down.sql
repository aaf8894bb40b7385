DROP SEQUENCE pez."reverse";
DROP SEQUENCE pez."forward";
DROP SCHEMA pez;
