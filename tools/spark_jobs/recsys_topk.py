"""spark-submit entry point of the recommender's batch top-K job (flagship.recsys.jobs.main).

tools/spark-submit-local.sh recsys_topk --input ratings.parquet --output out/ --mode svd
"""

import sys

from flagship.recsys.jobs import main

if __name__ == "__main__":
    sys.exit(main())
