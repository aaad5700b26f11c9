/* hfc.h - the hfc-eval library, every floor: data -> split -> engine ->
 * experiments -> report. Each concept has its own header under include/hfc/
 * (docs/architecture.md); a source file includes the ones it uses. */
#ifndef HFC_H
#define HFC_H

#include "hfc/core.h"
#include "hfc/data.h"
#include "hfc/model.h"
#include "hfc/engine.h"
#include "hfc/experiments.h"
#include "hfc/report.h"

#endif
