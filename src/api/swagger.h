/*
 * swagger — the API explorer of `-dev`: the Swagger UI at /swagger/, on
 * the OpenAPI 3 document of the HTTP API (docs/openapi.json, built into the
 * binary) at /swagger/openapi.json.
 *
 * The Swagger UI's assets come from the npm package swagger-ui-dist
 * (web/swagger-ui, installed by scripts/install-test-tools.sh). They are
 * read into memory once at start, so a request never touches the file
 * system and no path from a client ever reaches it. The struct is owned by
 * main(), which must keep it until the HTTP server has stopped.
 */
#ifndef CCMS_SWAGGER_H
#define CCMS_SWAGGER_H

#include <stddef.h>

#include "api/api.h"

struct swagger_ui;

/* Reads the assets from dir (swagger-ui-dist's directory). Returns 0, or
 * -1 with a message naming the file that could not be read. */
int swagger_ui_load(const char *dir, struct swagger_ui **out, char *err, size_t err_len);
void swagger_ui_free(struct swagger_ui *ui);

/* The answer for a cleaned path below /swagger: the page, the document or
 * an asset; 404 for anything else. Returns 0 or -ENOMEM. */
int api_swagger(const struct swagger_ui *ui, const char *path, struct api_response *out);

/* The OpenAPI document built into the binary (NUL-terminated). */
const char *swagger_openapi_json(size_t *len);

#endif
