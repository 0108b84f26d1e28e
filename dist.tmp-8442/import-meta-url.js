export const import_meta_url = require('node:url').pathToFileURL(__filename).href;
