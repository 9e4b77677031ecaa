-- Its indexes, constraints and the id sequence go with the table.
DROP TABLE curriculum;
