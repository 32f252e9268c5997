DROP TABLE owners;
DROP TABLE nodes;
