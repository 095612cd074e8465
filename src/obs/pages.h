/* pages — the status page and the mapping playground (src/obs/www/), built
 * into the binary by src/obs/embed.sh. NUL-terminated. */
#ifndef HB_PAGES_H
#define HB_PAGES_H

extern const char page_status_html[];
extern const char page_status_js[];
extern const char page_playground_html[];
extern const char page_playground_js[];
extern const char page_css[];

#endif
