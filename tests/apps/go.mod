module aegis.local/testapps

go 1.22
