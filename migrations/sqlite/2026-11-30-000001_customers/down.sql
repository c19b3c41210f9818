DROP TABLE customer_coupons;
DROP TABLE addresses;
DROP TABLE customer_metafields;
DROP TABLE customer_tags;
DROP TABLE customers;
