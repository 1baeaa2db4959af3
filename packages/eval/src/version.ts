/** The Vlit version recorded in every reproducibility manifest (kept equal to package.json by a test). */
export const VLIT_VERSION = '0.1.0';
