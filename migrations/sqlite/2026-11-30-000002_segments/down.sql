DROP TABLE segment_memberships;
DROP TABLE segments;
