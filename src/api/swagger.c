/*
 * swagger — the -dev API explorer (see swagger.h).
 */
#include "api/swagger.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fsutil.h"
#include "util/jsonw.h"

/* docs/openapi.json, assembled into the binary (the build runs in the
 * repository root; the Makefile rebuilds this object when the file changes). */
__asm__(".section .rodata\n"
        ".global ccms_openapi_json\n"
        "ccms_openapi_json:\n"
        ".incbin \"docs/openapi.json\"\n"
        ".global ccms_openapi_json_end\n"
        "ccms_openapi_json_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char ccms_openapi_json[], ccms_openapi_json_end[];

const char *swagger_openapi_json(size_t *len)
{
    *len = (size_t)(ccms_openapi_json_end - ccms_openapi_json);
    return ccms_openapi_json;
}

/* The page: Swagger UI on our document, absolute asset paths so that
 * /swagger and /swagger/ both work. */
static const char swagger_page[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>cc-metric-store API</title>\n"
    "<link rel=\"stylesheet\" href=\"/swagger/swagger-ui.css\">\n"
    "<link rel=\"icon\" type=\"image/png\" href=\"/swagger/favicon-32x32.png\">\n"
    "</head>\n<body>\n<div id=\"swagger-ui\"></div>\n"
    "<script src=\"/swagger/swagger-ui-bundle.js\"></script>\n"
    "<script src=\"/swagger/swagger-ui-standalone-preset.js\"></script>\n"
    "<script>\nwindow.ui = SwaggerUIBundle({url: \"/swagger/openapi.json\", "
    "dom_id: \"#swagger-ui\", deepLinking: true, persistAuthorization: true,\n"
    "  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],\n"
    "  plugins: [SwaggerUIBundle.plugins.DownloadUrl], layout: \"StandaloneLayout\"});\n"
    "</script>\n</body>\n</html>\n";

static const struct {
    const char *name;
    const char *content_type;
} swagger_assets[] = {
    { "swagger-ui.css", "text/css; charset=utf-8" },
    { "swagger-ui-bundle.js", "text/javascript; charset=utf-8" },
    { "swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8" },
    { "favicon-32x32.png", "image/png" },
};
#define SWAGGER_ASSETS (sizeof(swagger_assets) / sizeof(swagger_assets[0]))

struct swagger_ui {
    char *data[SWAGGER_ASSETS];
    size_t len[SWAGGER_ASSETS];
};

int swagger_ui_load(const char *dir, struct swagger_ui **out, char *err, size_t err_len)
{
    struct swagger_ui *ui = calloc(1, sizeof(*ui));
    *out = NULL;
    if (ui == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < SWAGGER_ASSETS; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, swagger_assets[i].name);
        int rc = fs_read_file(path, &ui->data[i], &ui->len[i]);
        if (rc != 0) {
            snprintf(err, err_len, "cannot read %s: %s", path, strerror(-rc));
            swagger_ui_free(ui);
            return -1;
        }
    }
    *out = ui;
    return 0;
}

void swagger_ui_free(struct swagger_ui *ui)
{
    if (ui == NULL)
        return;
    for (size_t i = 0; i < SWAGGER_ASSETS; i++)
        free(ui->data[i]);
    free(ui);
}

static int swagger_reply(const char *content_type, const char *data, size_t len,
                         struct api_response *out)
{
    struct jbuf b;
    jbuf_init(&b, len + 1);
    jbuf_append(&b, data, len);
    return api_reply_jbuf(200, content_type, &b, out);
}

int api_swagger(const struct swagger_ui *ui, const char *path, struct api_response *out)
{
    const char *name = strncmp(path, "/swagger", 8) == 0 ? path + 8 : "";
    if (name[0] == '/')
        name++;
    if (strcmp(path, "/swagger") == 0 || name[0] == '\0' || strcmp(name, "index.html") == 0)
        return swagger_reply("text/html; charset=utf-8", swagger_page, sizeof(swagger_page) - 1,
                             out);
    if (strcmp(name, "openapi.json") == 0) {
        size_t len;
        const char *doc = swagger_openapi_json(&len);
        return swagger_reply(API_CT_JSON, doc, len, out);
    }
    for (size_t i = 0; i < SWAGGER_ASSETS; i++)
        if (strcmp(name, swagger_assets[i].name) == 0)
            return swagger_reply(swagger_assets[i].content_type, ui->data[i], ui->len[i], out);
    return api_text(404, "404 page not found\n", out);
}
