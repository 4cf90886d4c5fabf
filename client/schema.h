/*
 * schema.h: the SQL files shipped with the client (client/schema/), compiled
 * into the binary by embed_sql.cmake.
 */
#ifndef KZ_SCHEMA_H
#define KZ_SCHEMA_H

struct schema_file {
    const char *name; /* "kinderschutz.sql", "migrations/0002_x.sql", … */
    const char *sql;  /* NUL-terminated text */
};

/* Sorted by name; ends with { NULL, NULL }. */
extern const struct schema_file schema_files[];

#endif /* KZ_SCHEMA_H */
