/*
 * backend — see backend.h.
 */
#include "net/backend.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKEND_MAX_BODY (64u << 20)

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_key(struct used_nodes *u, const char *cluster, const char *host)
{
    char **grown = realloc(u->keys, (u->count + 1) * sizeof(char *));
    if (!grown)
        return BACKEND_ENOMEM;
    u->keys = grown;
    size_t len = strlen(cluster) + strlen(host) + 2;
    char *key = malloc(len);
    if (!key)
        return BACKEND_ENOMEM;
    snprintf(key, len, "%s/%s", cluster, host);
    u->keys[u->count++] = key;
    return 0;
}

int backend_parse_used_nodes(const char *body, size_t len, struct used_nodes *out, char *err,
                             size_t err_len)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        snprintf(err, err_len, "invalid JSON: %s (line %d)", jerr.text, jerr.line);
        return BACKEND_EFORMAT;
    }
    json_t *map = json_object_get(root, "usedNodes");
    if (!map)
        map = root;
    int rc = json_is_object(map) ? 0 : BACKEND_EFORMAT;
    const char *cluster;
    json_t *hosts;
    json_object_foreach(map, cluster, hosts) {
        if (rc != 0)
            break;
        if (json_is_null(hosts))
            continue;
        if (!json_is_array(hosts)) {
            rc = BACKEND_EFORMAT;
            break;
        }
        size_t i;
        json_t *h;
        json_array_foreach(hosts, i, h) {
            if (!json_is_string(h)) {
                rc = BACKEND_EFORMAT;
                break;
            }
            if ((rc = add_key(out, cluster, json_string_value(h))) != 0)
                break;
        }
    }
    json_decref(root);
    if (rc == BACKEND_EFORMAT)
        snprintf(err, err_len, "expected {\"usedNodes\": {\"<cluster>\": [\"<host>\", ...]}}");
    else if (rc != 0)
        snprintf(err, err_len, "out of memory");
    if (rc != 0) {
        used_nodes_free(out);
        return rc;
    }
    if (out->count > 1)
        qsort(out->keys, out->count, sizeof(char *), compare_keys);
    return 0;
}

struct body {
    char *data;
    size_t len;
    bool too_large;
};

static size_t collect_body(char *ptr, size_t size, size_t n, void *userdata)
{
    struct body *b = userdata;
    size_t add = size * n;
    if (b->len + add > BACKEND_MAX_BODY) {
        b->too_large = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* libcurl progress callback: a non-zero return aborts the transfer. */
static int check_cancel(void *cancel, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return cancel && atomic_load((const atomic_bool *)cancel);
}

int backend_used_nodes(const char *base_url, const char *token, int64_t ts,
                       const atomic_bool *cancel, struct used_nodes *out, char *err,
                       size_t err_len)
{
    memset(out, 0, sizeof(*out));
    size_t url_len = strlen(base_url) + 64;
    char *url = malloc(url_len);
    char *auth = token && token[0] ? malloc(strlen(token) + 32) : NULL;
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    struct body body = {0};
    int rc = BACKEND_ENOMEM;
    if (!url || !curl || (token && token[0] && !auth)) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }
    snprintf(url, url_len, "%s/api/jobs/used_nodes?ts=%lld", base_url, (long long)ts);
    if (auth) {
        sprintf(auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_cancel);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)cancel);
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        snprintf(err, err_len, "%s: %s", url, body.too_large ? "response too large"
                                                            : curl_easy_strerror(cc));
        rc = BACKEND_EREQUEST;
    } else if (status != 200) {
        snprintf(err, err_len, "%s: backend returned status %ld", url, status);
        rc = BACKEND_EREQUEST;
    } else {
        rc = backend_parse_used_nodes(body.data ? body.data : "", body.len, out, err, err_len);
    }
done:
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    free(body.data);
    free(auth);
    free(url);
    return rc;
}

bool used_nodes_contains(const struct used_nodes *u, const char *cluster, const char *host)
{
    char key[2 * 256 + 2];
    snprintf(key, sizeof key, "%s/%s", cluster, host);
    const char *k = key;
    return u->count && bsearch(&k, u->keys, u->count, sizeof(char *), compare_keys) != NULL;
}

void used_nodes_free(struct used_nodes *u)
{
    for (size_t i = 0; i < u->count; i++)
        free(u->keys[i]);
    free(u->keys);
    u->keys = NULL;
    u->count = 0;
}
