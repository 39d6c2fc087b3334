"""spark-submit entry point of the retail feature job (flagship.forecasting.features.main).

tools/spark-submit-local.sh forecasting_features --input data.csv --output features/ [--mode delta]
"""

from flagship.forecasting.features import main

if __name__ == "__main__":
    main()
